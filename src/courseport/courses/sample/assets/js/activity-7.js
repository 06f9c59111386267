// Activity for lesson 7, "Quasi-identifiers and linkage attacks".
// Course Builder legacy activity format (rendered by assets/lib/activity-generic-1.3.js).

var activity = [

  '<p>Test your understanding of quasi-identifiers. Choose the best answer for each question, then press "Check Answer".</p>',

  '<p><b>1.</b> Which of these attributes is a <em>direct</em> identifier?</p>',

  { questionType: 'multiple choice',
    choices: [['Year of birth', false, 'Year of birth narrows the field but does not identify anyone alone.'],
              ['Email address', true, 'Correct! An email address points to one person on its own.'],
              ['Favourite colour', false, 'This is a non-identifying attribute in most data sets.']]},

  '<p><b>2.</b> A released table has columns postal code, date of birth, gender and diagnosis. Which columns are quasi-identifiers?</p>',

  { questionType: 'multiple choice',
    choices: [['Only diagnosis', false, 'Diagnosis is the sensitive value, not the linking key.'],
              ['Postal code, date of birth and gender', true, 'Correct! Together these can single out most people.'],
              ['None of them, because there are no names', false, 'Removing names is not enough: combinations of attributes identify people too.']]},

  '<p><b>3.</b> What does a linkage attack need?</p>',

  { questionType: 'multiple choice',
    choices: [['The secret key used to encrypt the data', false, 'No key is needed; the attack only joins tables.'],
              ['A second data set that shares attributes with names attached', true, 'Correct! Joining on shared quasi-identifiers re-identifies unique rows.'],
              ['Access to the original database server', false, 'The attack works on released copies of the data.']]}

];
